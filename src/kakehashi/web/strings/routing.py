"""Strings of the inbound routing page (/routing: routing.html, _routing_live.html and routing.js) and the menu
entry that leads there. Agents' states (``state.*``) are shared with the desk: they stay in ``web/i18n.py``."""

from __future__ import annotations

#: Japanese (the template's text) → English.
EN: dict[str, str] = {
    "着信ルーティング": "Inbound routing",
    "キューの状況": "Queues now",
    "振り分け方式": "Strategy",
    "待ち呼": "Waiting",
    "最長待ち時間": "Longest wait",
    "受付可 / メンバー": "Available / members",
    "本日の着信": "Offered today",
    "放棄": "Abandoned",
    "サービスレベル": "Service level",
    "平均応答時間": "Avg. speed of answer",
    "キューはありません": "No queues",
    "ログイン名": "Login",
    "状態": "State",
    "理由": "Reason",
    "経過時間": "Time in state",
    "状態の変更": "Change state",
    "エージェントはいません": "No agents",
    "着信番号": "Inbound numbers",
    "番号": "Number",
    "名称": "Label",
    "応答先": "Answered by",
    "着信番号はありません": "No inbound numbers",
    "コールバック待ち": "Callbacks to make",
    "受付日時": "Requested at",
    "試行回数": "Attempts",
    "待機中の依頼はありません": "No callbacks waiting",
    "留守番電話（最新）": "Latest voicemail",
    "日時": "Left at",
    "メッセージはありません": "No messages",
    "電話番号の表示は監査ログに記録されます": "Showing these numbers is recorded in the audit log",
    "通話の動きに合わせて自動で更新します": "Updates itself as calls move",
    "更新": "Updated",
    "デモの模擬着信": "Demo traffic",
    "件/時": "calls/hour",
    "operator でログインして受付可にすると、その着信も受けられます": (
        "log in as operator and go available to take some of these calls"
    ),
    "受付可にする": "Make available",
    "離席": "Break",
    "ログアウトさせる": "Log out",
    "変更する": "Change",
    "IVR": "IVR",
    "strategy.longest_idle": "Longest idle",
    "strategy.fewest_calls": "Fewest calls",
    "strategy.round_robin": "Round robin",
    "strategy.ring_all": "Ring all",
    "callback.pending": "Waiting",
    "callback.dialing": "Dialling",
    "callback.done": "Done",
    "callback.failed": "Failed",
    "voicemail.new": "New",
    "voicemail.done": "Done",
}

#: The script's strings (id → Japanese).
JS: dict[str, str] = {
    "routing.changed": "状態を変更しました",
    "routing.changedLater": "通話と後処理のあとに変更されます",
    "routing.failed": "変更できませんでした",
    "routing.updated": "更新",
}

#: The script's strings in English.
JS_EN: dict[str, str] = {
    "routing.changed": "State changed",
    "routing.changedLater": "Changes after the call and its wrap-up",
    "routing.failed": "Could not change the state",
    "routing.updated": "Updated",
}

#: Code-like keys → Japanese (a queue's strategy, a callback's and a voicemail's status).
JA_KEYS: dict[str, str] = {
    "strategy.longest_idle": "着信均等分配",
    "strategy.fewest_calls": "応答件数の少ない順",
    "strategy.round_robin": "順番",
    "strategy.ring_all": "一斉呼出",
    "callback.pending": "待機中",
    "callback.dialing": "発信中",
    "callback.done": "完了",
    "callback.failed": "失敗",
    "voicemail.new": "未確認",
    "voicemail.done": "対応済み",
}
