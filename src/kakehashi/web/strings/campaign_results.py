"""Strings of a campaign's results page (/campaigns/{id}/results: campaign_results.html and campaign_results.js).

The script's texts may hold ``{name}``-style slots, which campaign_results.js fills in as text.
"""

from __future__ import annotations

#: Japanese (the template's text) → English.
EN: dict[str, str] = {
    "キャンペーン結果": "Campaign results",
    "キャンペーン一覧": "Campaigns",
    "開始日": "From",
    "終了日": "To",
    "表示": "Show",
    "日本時間。空欄は全期間": "Japan time; empty: the whole campaign",
    "主な指標": "Key figures",
    "架電数": "Dials",
    "接続数": "Connects",
    "コンタクト": "Contacts",
    "コンタクト率": "Contact rate",
    "成約": "Successes",
    "成約率": "Success rate",
    "お断り": "Refusals",
    "放棄率": "Abandon rate",
    "残りリスト": "Leads remaining",
    "完了見込み": "Forecast to finish",
    "目標の達成": "Goal progress",
    "1件あたり架電回数": "Attempts per lead",
    "平均通話時間": "Avg talk time",
    "平均後処理時間": "Avg wrap-up time",
    "オペレーター名は OP-01 などの記号で表示しています": "Operators are shown as OP-01, OP-02… (names masked)",
    "時間帯別（日本時間）": "By hour of the day (Japan time)",
    "日別": "By day",
    "オペレーター別": "By operator",
    "リスト別": "By list",
    "まだ架電がありません": "No dials yet",
    "集計表": "Table",
    "集計の単位": "Group by",
    "CSV をダウンロード": "Download CSV",
    "Excel をダウンロード": "Download Excel",
    "時間帯ごとの架電数・コンタクト数・成約数とコンタクト率のグラフ（下の表を「時間帯」で見ると同じ内容）": (
        "Chart of dials, contacts, successes and the contact rate per hour of the day (the table grouped by hour "
        "has the same figures)"
    ),
    "日ごとの架電数・コンタクト数・成約数とコンタクト率のグラフ（下の表を「日」で見ると同じ内容）": (
        "Chart of dials, contacts, successes and the contact rate per day (the table grouped by day has the same "
        "figures)"
    ),
    "オペレーターごとの架電数・コンタクト数・成約数とコンタクト率のグラフ（集計表と同じ内容）": (
        "Chart of dials, contacts, successes and the contact rate per operator (the table grouped by operator has "
        "the same figures)"
    ),
    "リストごとの架電数・コンタクト数・成約数とコンタクト率のグラフ（下の表を「リスト」で見ると同じ内容）": (
        "Chart of dials, contacts, successes and the contact rate per list (the table grouped by list has the same "
        "figures)"
    ),
    "results.by.list": "List",
    "results.by.segment": "Segment",
    "results.by.agent": "Operator",
    "results.by.hour": "Hour (Japan time)",
    "results.by.day": "Day",
    "results.status.draft": "Draft",
    "results.status.running": "Running",
    "results.status.paused": "Paused",
    "results.status.stopped": "Stopped",
}

#: Code-like template keys → Japanese.
JA_KEYS: dict[str, str] = {
    "results.by.list": "リスト",
    "results.by.segment": "セグメント",
    "results.by.agent": "オペレーター",
    "results.by.hour": "時間帯（日本時間）",
    "results.by.day": "日",
    "results.status.draft": "下書き",
    "results.status.running": "実行中",
    "results.status.paused": "一時停止",
    "results.status.stopped": "終了",
}

#: The script's texts: id → Japanese.
JS: dict[str, str] = {
    "cr.loading": "読み込み中…",
    "cr.failed": "結果を読み込めませんでした（{detail}）",
    "cr.none": "（なし）",
    "cr.noList": "（リストなし）",
    "cr.noSegment": "（セグメントなし）",
    "cr.noAgent": "（担当なし）",
    "cr.total": "合計",
    "cr.ofDials": "架電 {n} 件中",
    "cr.connectRate": "接続率 {rate}",
    "cr.contacts": "コンタクト {n} 件",
    "cr.successes": "成約 {n} 件",
    "cr.abandoned": "放棄 {n} 件",
    "cr.leadsOf": "全 {n} 件中",
    "cr.forecastHours": "約 {hours} 時間",
    "cr.forecastDays": "稼働 約 {days} 日分（1 時間に {rate} 件完了）",
    "cr.forecastShort": "データ不足",
    "cr.forecastShortSub": "直近 {days} 日の稼働 {hours} 時間・完了 {n} 件では予測できません",
    "cr.forecastDone": "完了",
    "cr.forecastNoLeads": "リストなし",
    "cr.goalNone": "目標なし",
    "cr.goalOf": "成約 {n} / 目標 {goal}",
    "cr.chart.dials": "架電数",
    "cr.chart.contacts": "コンタクト数",
    "cr.chart.successes": "成約数",
    "cr.chart.contactRate": "コンタクト率",
    "cr.chart.noChart": "グラフを表示できません（下の表をご覧ください）",
    "cr.badWindow": "終了日は開始日以降にしてください",
}

#: The script's texts: id → English.
JS_EN: dict[str, str] = {
    "cr.loading": "Loading…",
    "cr.failed": "The results could not be loaded ({detail})",
    "cr.none": "(none)",
    "cr.noList": "(no list)",
    "cr.noSegment": "(no segment)",
    "cr.noAgent": "(no operator)",
    "cr.total": "Total",
    "cr.ofDials": "of {n} dials",
    "cr.connectRate": "connect rate {rate}",
    "cr.contacts": "{n} contacts",
    "cr.successes": "{n} successes",
    "cr.abandoned": "{n} abandoned",
    "cr.leadsOf": "of {n} leads",
    "cr.forecastHours": "about {hours} h",
    "cr.forecastDays": "about {days} working days ({rate} leads settled an hour)",
    "cr.forecastShort": "Too little data",
    "cr.forecastShortSub": "{hours} working hours and {n} settled leads in the last {days} days are not enough",
    "cr.forecastDone": "Finished",
    "cr.forecastNoLeads": "No leads",
    "cr.goalNone": "No goal set",
    "cr.goalOf": "{n} successes of a goal of {goal}",
    "cr.chart.dials": "Dials",
    "cr.chart.contacts": "Contacts",
    "cr.chart.successes": "Successes",
    "cr.chart.contactRate": "Contact rate",
    "cr.chart.noChart": "The chart cannot be shown (see the table below)",
    "cr.badWindow": "The end date must not be before the start date",
}
