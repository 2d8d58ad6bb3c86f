"""Strings of the IVR flow page (/ivr): its text, and each problem of a flow in Japanese by its code.

The codes and their English are :data:`kakehashi.ivr.problems.ENGLISH`; a template here fills the same
parameters (``{queue}``, ``{line}``…). A template is a ``str.format`` string, or a function of the parameters
where Japanese needs more than slots (a weekday's name). ``tests/test_ivr_problems.py`` checks that every code
has its Japanese.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_DAYS_JA = {"mon": "月曜", "tue": "火曜", "wed": "水曜", "thu": "木曜", "fri": "金曜", "sat": "土曜", "sun": "日曜"}

Template = str | Callable[[dict[str, Any]], str]

#: Japanese (the template's text) → English: ivr.html, and the node and link labels of ``ivr.service.outline``.
EN: dict[str, str] = {
    "IVRフロー": "IVR flows",
    "IVRフロー一覧": "All IVR flows",
    "名前": "Name",
    "現在のバージョン": "Current version",
    "更新日時": "Updated",
    "フローはまだありません": "No flows yet",
    "新しいフロー": "New flow",
    "英数字・_・- （着信番号から参照する名前）": "Letters, digits, _ and - (the name inbound numbers refer to)",
    "フロー定義 (JSON)": "Flow definition (JSON)",
    "コメント": "Comment",
    "作成": "Create",
    "保存しました": "Saved",
    "保存できませんでした。次の点を直してください": "Not saved: please fix these problems",
    "使用中": "live",
    "過去のバージョン": "older version",
    "種類": "Type",
    "内容": "Settings",
    "行き先": "Goes to",
    "開始": "start",
    "出口": "exit",
    "新しいバージョンとして保存": "Save as a new version",
    "過去のバージョンを表示中です。保存すると使用中になります（ロールバック）": (
        "Showing an older version: saving it makes it live again (a rollback)"
    ),
    "何を変えたか": "What changed",
    "保存": "Save",
    "バージョン履歴": "Versions",
    "バージョン": "Version",
    "保存日時": "Saved at",
    "保存した人": "Saved by",
    "音声再生": "Play prompt",
    "録音告知": "Recording notice",
    "メニュー": "Menu",
    "番号入力": "Collect digits",
    "営業時間判定": "Business hours",
    "発信者で分岐": "Branch on caller",
    "振り分け設定": "Set routing",
    "キューへ接続": "To queue",
    "転送": "Transfer",
    "留守番電話": "Voicemail",
    "コールバック案内": "Callback offer",
    "終話": "Hang up",
    "次へ": "Next",
    "失敗時": "On failure",
    "営業中": "Open",
    "時間外": "Closed",
    "該当": "Then",
    "非該当": "Else",
    "辞退時": "Declined",
    "キー": "Key",
    "録音": "Recording",
    "録音開始": "starts here",
    "録音しない": "not recorded",
    "再入力": "Retries / timeout",
    "変数": "Variable",
    "桁数": "Digits",
    "機密（録音停止・マスク）": "Sensitive (recording paused, masked)",
    "はい": "yes",
    "いいえ": "no",
    "祝日": "Public holidays",
    "休業": "closed",
    "営業": "open",
    "休業日": "Closed dates",
    "特別営業日": "Open dates",
    "登録済みの顧客": "Known customer",
    "未解決のクレームあり": "Open complaint",
    "優先度": "Priority",
    "スキル": "Skill",
    "キュー": "Queue",
    "振り分け設定のキュー": "the queue set earlier",
    "転送先": "Target",
    "受付キー": "Accept key",
    "共通": "shared mailbox",
    "月曜": "Mon",
    "火曜": "Tue",
    "水曜": "Wed",
    "木曜": "Thu",
    "金曜": "Fri",
    "土曜": "Sat",
    "日曜": "Sun",
}


def _no_hours(p: dict[str, Any]) -> str:
    day = _DAYS_JA.get(str(p["weekday"]), str(p["weekday"]))
    return f"{p['date']} は{day}で、weekly にその曜日の時間がないため休みのままです"


#: Code → Japanese.
PROBLEMS_JA: dict[str, Template] = {
    # 1. shape
    "required": "入力してください（必須の項目です）",
    "unknown_field": "「{name}」という項目はありません",
    "unknown_field_here": "知らない項目があります",
    "unknown_node_type": "ノードの種類「{type}」はありません（{types} のいずれか）",
    "node_type_missing": 'どのノードにも "type" が必要です（{types} のいずれか）',
    "node_id_pattern": "ノード ID は英数字・_・- の 1〜40 文字です",
    "key_pattern": "キーは 0〜9・*・# の1文字です",
    "time_pattern": "時刻は HH:MM（00:00〜24:00）で書いてください",
    "var_pattern": "英小文字・数字・_ で、英小文字で始めてください（30文字まで）",
    "object": "JSON のオブジェクト {{…}} にしてください",
    "too_many_nodes": "ノードは {max} 個までです（このフローは {count} 個）",
    # a wrong value (pydantic's findings; the parameters are its context)
    "value.string": "文字列にしてください",
    "value.integer": "整数にしてください",
    "value.number": "数値にしてください",
    "value.boolean": "true か false にしてください",
    "value.list": "リスト […] にしてください",
    "value.date": "日付（YYYY-MM-DD）にしてください",
    "value.ge": "{ge} 以上にしてください",
    "value.gt": "{gt} より大きくしてください",
    "value.le": "{le} 以下にしてください",
    "value.lt": "{lt} より小さくしてください",
    "value.choice": lambda p: f"{str(p.get('expected', '')).replace(' or ', ', ')} のいずれかにしてください",
    "value.too_short": "{min_length} 文字以上にしてください",
    "value.too_long": "{max_length} 文字以内にしてください",
    "value.too_few": "{min_length} 個以上必要です（今は {actual_length} 個）",
    "value.too_many": "{max_length} 個までです（今は {actual_length} 個）",
    "value.invalid": "値が正しくありません（{detail}）",
    # 2. each node
    "queue_unknown": "「{queue}」というキューはありません（キュー: {queues}）",
    "queue_unknown_more": "「{queue}」というキューはありません（キュー: {queues} ほか {more} 個）",
    "queue_unknown_none": "「{queue}」というキューはありません（このテナントにはまだキューがありません）",
    "digits_min_over_max": "min_digits（{min}）が max_digits（{max}）より大きくなっています",
    "set_nothing": "set ノードでは、キュー・優先度・スキルのどれかを設定してください",
    "set_queue_and_skill": "キューとスキルはどちらか一方にしてください（スキルがキューを決めます）",
    "skill_unknown": "スキル「{skill}」を受け持つキューがありません（スキルで担当者を決めるキュー: {skills}）",
    "skill_unknown_none": "スキル「{skill}」を受け持つキューがありません（スキルで担当者を決めるキューがありません）",
    "hours_close_before_open": (
        "開始 {opens}・終了 {closes} になっています。終了は開始より後にしてください（深夜0時は 24:00）"
    ),
    "open_date_closed": "{date} は closed_dates（休業日）にも入っています",
    "open_date_no_hours": _no_hours,
    "branch_one_test": "テストはちょうど1つ書いてください: known, rank_in, open_complaint, または var と equals",
    "branch_one_test_found": (
        "テストはちょうど1つ書いてください: known, rank_in, open_complaint, または var と equals"
        "（書かれているもの: {found}）"
    ),
    "rank_list_empty": "ランクを1つ以上書いてください",
    "rank_length": "ランクは 1〜20 文字です",
    "var_equals_pair": "var と equals は組で書いてください（collect の変数とその値）",
    "var_not_collected": "「{var}」を入れる collect ノードがありません（collect の変数: {collected}）",
    "var_not_collected_none": "「{var}」を入れる collect ノードがありません（このフローに collect ノードはありません）",
    "var_sensitive": "「{var}」は sensitive の collect で入力され、伏せて保存されるため、分岐の条件にできません",
    "equals_not_digits": "「{value}」には一致しません（入力される値は数字です）",
    # 3. links
    "start_unknown": "「{node}」というノードはありません（start にはノードの ID を書きます）",
    "link_unknown": "「{node}」というノードはありません",
    # 4. the graph
    "unreachable": "start からたどり着けません",
    "loop": (
        "キー入力を待たずに回り続ける輪があります: {cycle}"
        "（何も押さないお客様が抜け出せません。失敗時・辞退時の行き先を出口にしてください）"
    ),
    "no_exit": "ここから出口（キュー・転送・留守番電話・終話・コールバック案内）に行けません",
    "queue_not_chosen": (
        "ノード {node} の前でキューが決まらない道があります（例: {path}）。"
        "ここか、途中の set ノードでキュー（またはスキル）を指定してください"
    ),
    # the flow service and the page
    "flow_name": "英数字・_・- の 1〜60 文字で、英数字で始めてください",
    "name_taken": "この名前はすでに使われています",
    "version_conflict": (
        "編集を始めたバージョン {base} のあとに、バージョン {saved} が保存されました。まずその内容を確認してください"
    ),
    "json_invalid": "JSON として読めません: {reason}（{line} 行 {column} 文字目）",
    "json_too_deep": "入れ子が深すぎます",
    "flow_not_object": 'フローは JSON のオブジェクト {{"start": …, "nodes": {{…}}}} にしてください',
}

#: What a problem in a mapping's key (``params["in_key"]``) starts with.
KEY_PREFIX_JA = "キーが正しくありません: "
