"""Japanese-first UI strings with English available.

The Japanese text is the key: templates call ``t("顧客マスター")`` and get it back in Japanese or its
English entry. The page's script gets its strings from :func:`js_strings`, rendered into the page as
JSON, so the JS never holds text of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import Request

from kakehashi.web import strings

LANGUAGES = ("ja", "en")
LANGUAGE_NAMES = {"ja": "日本語", "en": "English"}

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "架け橋": "Kakehashi",
        "顧客マスター": "Customer master",
        "本文へ移動": "Skip to content",
        "電話番号で検索": "Look up by phone",
        "電話番号": "Phone",
        "電話番号2": "Phone 2",
        "検索": "Search",
        "顧客名で検索": "Search by name",
        "氏名・フリガナの先頭": "First letters of the name or reading",
        "氏名": "Name",
        "フリガナ": "Reading (kana)",
        "郵便番号": "Postal code",
        "7桁で住所を自動入力": "7 digits fill in the address",
        "都道府県": "Prefecture",
        "市区町村": "City",
        "町域": "Town",
        "番地": "Street",
        "建物名": "Building",
        "メール": "Email",
        "性別": "Gender",
        "生年月日": "Birthday",
        "年齢": "Age",
        "ランク": "Rank",
        "メモ": "Notes",
        "新規登録": "New customer",
        "新規顧客": "New customer",
        "登録": "Save",
        "取消": "Cancel",
        "購入履歴": "Purchase history",
        "未解決のクレーム・返品": "Open complaints and returns",
        "対応履歴": "Contact history",
        "追加項目": "Custom fields",
        "連絡先": "Contact",
        "住所": "Address",
        "未登録の番号です": "Unknown caller",
        "男性": "Male",
        "女性": "Female",
        "その他": "Other",
        "未回答": "Not given",
        "歳": "",
        "件": "",
        "なし": "None",
        "ログイン": "Log in",
        "ログアウト": "Log out",
        "ユーザー名": "User name",
        "パスワード": "Password",
        "パスワード変更": "Change password",
        "現在のパスワード": "Current password",
        "新しいパスワード": "New password",
        "10文字以上": "At least 10 characters",
        "変更": "Change",
        "パスワードを変更しました": "Your password was changed",
        "ユーザー名またはパスワードが違います": "Wrong user name or password",
        "ログインの失敗が続いたため、しばらくお待ちください": "Too many failed logins; please wait",
        "秒後に再試行できます": "seconds until you can try again",
        "ログインが混み合っています": "Too many logins are being checked right now",
        "ログインの試行が多すぎます": "Too many login attempts; please wait",
        "フォームの有効期限が切れました。もう一度お試しください": "The form expired; please try again",
        "役割": "Role",
        "role.operator": "Operator",
        "role.supervisor": "Supervisor",
        "role.admin": "Administrator",
        "role.client_viewer": "Client viewer",
        "登録しました": "Saved",
        "入力内容を確認してください": "Please check the fields below",
        "言語": "Language",
        "合計": "Total",
        "注文日": "Date",
        "商品": "Items",
        "番号を入力してください": "Enter a number",
        "ショートカット": "Shortcuts",
        "電話番号へ": "phone box",
        "顧客名検索へ": "name search",
        "登録する": "save",
        "電話番号へ戻る": "back to the phone box",
        "着信番号を入力して Enter": "Type the caller's number and press Enter",
        "例: 1980/5/1, S55.5.1, 昭和55年5月1日": "e.g. 1980/5/1, S55.5.1",
        "必須": "required",
        # IVR flows (ivr.html; node and link labels of ivr.service.outline)
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
        # Inbound routing (routing.html, _routing_live.html) and the menu
        "着信ルーティング": "Inbound routing",
        "キューの状況": "Queues now",
        "振り分け方式": "Strategy",
        "待ち呼": "Waiting",
        "最長待ち時間": "Longest wait",
        "受付可 / メンバー": "Available / members",
        "本日の着信": "Offered today",
        "応答": "Answered",
        "放棄": "Abandoned",
        "サービスレベル": "Service level",
        "平均応答時間": "Avg. speed of answer",
        "キューはありません": "No queues",
        "エージェント": "Agents",
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
        "state.logged_out": "Logged out",
        "state.available": "Available",
        "state.ringing": "Ringing",
        "state.on_call": "On a call",
        "state.wrap_up": "Wrap-up",
        "state.break": "Break",
        "state.missed": "Missed",
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
    },
}

# Strings the page's script needs, keyed by a stable id; the values are the Japanese text.
JS_STRINGS: dict[str, str] = {
    "unknownNumber": "未登録の番号です",
    "withheld": "非通知の着信です",
    "badNumber": "電話番号として認識できません",
    "enterNumber": "番号を入力してください",
    "loading": "検索中…",
    "networkError": "サーバーに接続できません",
    "saved": "登録しました",
    "checkFields": "入力内容を確認してください",
    "newCustomer": "新規顧客",
    "noResults": "該当する顧客はいません",
    "suggestHint": "↓↑で選択、Enterで既存顧客を開く",
    "existingCustomers": "既存の顧客",
    "postalNotFound": "該当する住所がありません",
    "postalPick": "住所を選択してください（↓↑, Enter）",
    "postalFilled": "住所を入力しました",
    "age": "年齢",
    "years": "歳",
    "none": "なし",
    "name": "氏名",
    "kana": "フリガナ",
    "contact": "連絡先",
    "address": "住所",
    "birthday": "生年月日",
    "gender": "性別",
    "email": "メール",
    "rank": "ランク",
    "notes": "メモ",
    "custom": "追加項目",
    "orders": "購入履歴",
    "openComplaints": "未解決のクレーム・返品",
    "contacts": "対応履歴",
    "orderDate": "注文日",
    "orderNo": "注文番号",
    "items": "商品",
    "total": "合計",
    "customerId": "顧客ID",
    "primary": "主",
    "yes": "はい",
    "no": "いいえ",
    "openCustomer": "この顧客を開く",
    "newForNumber": "この番号で新規登録",
    "gender.male": "男性",
    "gender.female": "女性",
    "gender.other": "その他",
    "gender.unknown": "未回答",
    "kind.fixed": "固定",
    "kind.mobile": "携帯",
    "kind.free_dial": "フリーダイヤル",
    "kind.ip": "IP電話",
    "kind.navi_dial": "ナビダイヤル",
    "kind.other": "その他",
    "rank.normal": "一般",
    "rank.vip": "VIP",
    "flag.open_complaint": "未解決クレームあり",
    "flag.caution": "要注意",
    "flag.outbound_excluded": "発信禁止",
    "flag.vip": "VIP",
    "complaint.complaint": "クレーム",
    "complaint.return": "返品",
    "severity.low": "低",
    "severity.medium": "中",
    "severity.high": "高",
    "channel.call": "電話",
    "channel.note": "メモ",
    "channel.email": "メール",
    "channel.chat": "チャット",
    "channel.sms": "SMS",
    "channel.fax": "FAX",
    "channel.mail": "郵便",
    "direction.inbound": "受信",
    "direction.outbound": "発信",
    # Server messages (English, from the API) shown in Japanese when they match.
    "err.required": "入力してください",
    "err.email": "メールアドレスの形式が正しくありません",
    "err.kana": "フリガナはカタカナかひらがなで入力してください",
    "err.postal": "郵便番号は7桁で入力してください",
    "err.phone": "電話番号として正しくありません",
    "err.phoneTaken": "この番号は既に別の顧客に登録されています",
    "err.phoneTwice": "同じ番号が2回入力されています",
    "err.birthday": "生年月日が正しくありません",
    "err.date": "日付として読めません（例: 1980/5/1, S55.5.1）",
    "err.number": "数値を入力してください",
    "err.choice": "選択肢から選んでください",
    # The routing page (routing.js)
    "routing.changed": "状態を変更しました",
    "routing.changedLater": "通話と後処理のあとに変更されます",
    "routing.failed": "変更できませんでした",
    "routing.updated": "更新",
}

_JS_ENGLISH: dict[str, str] = {
    "unknownNumber": "Unknown caller",
    "withheld": "Caller ID withheld",
    "badNumber": "Not a phone number",
    "enterNumber": "Enter a number",
    "loading": "Searching…",
    "networkError": "Cannot reach the server",
    "saved": "Saved",
    "checkFields": "Please check the fields below",
    "newCustomer": "New customer",
    "noResults": "No matching customer",
    "suggestHint": "↓↑ to choose, Enter opens the existing customer",
    "existingCustomers": "Existing customers",
    "postalNotFound": "No address for this postal code",
    "postalPick": "Choose the address (↓↑, Enter)",
    "postalFilled": "Address filled in",
    "age": "Age",
    "years": " years",
    "none": "None",
    "name": "Name",
    "kana": "Reading",
    "contact": "Contact",
    "address": "Address",
    "birthday": "Birthday",
    "gender": "Gender",
    "email": "Email",
    "rank": "Rank",
    "notes": "Notes",
    "custom": "Custom fields",
    "orders": "Purchase history",
    "openComplaints": "Open complaints and returns",
    "contacts": "Contact history",
    "orderDate": "Date",
    "orderNo": "Order no.",
    "items": "Items",
    "total": "Total",
    "customerId": "Customer ID",
    "primary": "main",
    "yes": "Yes",
    "no": "No",
    "openCustomer": "Open this customer",
    "newForNumber": "New customer with this number",
    "gender.male": "Male",
    "gender.female": "Female",
    "gender.other": "Other",
    "gender.unknown": "Not given",
    "kind.fixed": "landline",
    "kind.mobile": "mobile",
    "kind.free_dial": "toll-free",
    "kind.ip": "IP phone",
    "kind.navi_dial": "Navi Dial",
    "kind.other": "other",
    "rank.normal": "Normal",
    "rank.vip": "VIP",
    "flag.open_complaint": "Open complaint",
    "flag.caution": "Caution",
    "flag.outbound_excluded": "Do not call",
    "flag.vip": "VIP",
    "complaint.complaint": "Complaint",
    "complaint.return": "Return",
    "severity.low": "low",
    "severity.medium": "medium",
    "severity.high": "high",
    "channel.call": "Call",
    "channel.note": "Note",
    "channel.email": "Email",
    "channel.chat": "Chat",
    "channel.sms": "SMS",
    "channel.fax": "Fax",
    "channel.mail": "Mail",
    "direction.inbound": "in",
    "direction.outbound": "out",
    "err.required": "Required",
    "err.date": "Not a date (e.g. 1980-05-01)",
    "routing.changed": "State changed",
    "routing.changedLater": "Changes after the call and its wrap-up",
    "routing.failed": "Could not change the state",
    "routing.updated": "Updated",
}


# Keys that are not Japanese text themselves (built from codes, e.g. a role).
_JA_KEYS = {
    "role.operator": "オペレーター",
    "role.supervisor": "スーパーバイザー",
    "role.admin": "管理者",
    "role.client_viewer": "委託元閲覧者",
    "state.logged_out": "ログアウト",
    "state.available": "受付可",
    "state.ringing": "呼出中",
    "state.on_call": "通話中",
    "state.wrap_up": "後処理",
    "state.break": "離席",
    "state.missed": "応答なし",
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


def _merge_page_strings() -> None:
    for module in strings.page_modules():
        MESSAGES["en"].update(getattr(module, "EN", {}))
        JS_STRINGS.update(getattr(module, "JS", {}))
        _JS_ENGLISH.update(getattr(module, "JS_EN", {}))
        _JA_KEYS.update(getattr(module, "JA_KEYS", {}))


_merge_page_strings()


def pick_language(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "ja"
    return lang if lang in LANGUAGES else "ja"


def translator(lang: str) -> Callable[[str], str]:
    table = MESSAGES.get(lang, {})

    def t(text: str) -> str:
        return table.get(text, text) if lang != "ja" else _JA_KEYS.get(text, text)

    return t


def js_strings(lang: str) -> dict[str, str]:
    """The script's strings in ``lang``. English falls back to the API's own (English) messages for ``err.*``."""
    if lang == "en":
        return {key: _JS_ENGLISH.get(key, "" if key.startswith("err.") else text) for key, text in JS_STRINGS.items()}
    return dict(JS_STRINGS)


# --- IVR flow problems in Japanese ------------------------------------------------------------------------
# ``ivr.validate`` (and the flow service and page) say what is wrong in English; the /ivr page shows them in
# Japanese when the page is. Each pattern matches a whole message; ``{0}``, ``{1}``… are the parts that vary
# (node ids, queue names, numbers). A message not listed is shown as it is.

_DAYS_JA = {"mon": "月曜", "tue": "火曜", "wed": "水曜", "thu": "木曜", "fri": "金曜", "sat": "土曜", "sun": "日曜"}
Rewrite = str | Callable[[re.Match[str]], str]


def _queues_ja(found: re.Match[str]) -> str:
    name, known = found.group(1), found.group(2)
    if known == "it has no queues yet":
        return f"「{name}」というキューはありません（このテナントにはまだキューがありません）"
    listed = re.fullmatch(r"queues: (.+?)(?: and (\d+) more)?", known)
    if listed is None:
        return f"「{name}」というキューはありません（{known}）"
    more = f" ほか {listed.group(2)} 個" if listed.group(2) else ""
    return f"「{name}」というキューはありません（キュー: {listed.group(1)}{more}）"


def _skills_ja(found: re.Match[str]) -> str:
    skill, known = found.group(1), found.group(2)
    if known.startswith("skills of queues: "):
        known = "スキルで担当者を決めるキュー: " + known.removeprefix("skills of queues: ")
    elif known.startswith("no queue"):
        known = "スキルで担当者を決めるキューがありません"
    return f"スキル「{skill}」を受け持つキューがありません（{known}）"


def _one_test_ja(found: re.Match[str]) -> str:
    listed = f"（書かれているもの: {found.group(1)}）" if found.group(1) else ""
    return f"テストはちょうど1つ書いてください: known, rank_in, open_complaint, または var と equals{listed}"


def _collected_ja(found: re.Match[str]) -> str:
    known = found.group(2)
    if known.startswith("collected: "):
        known = "collect の変数: " + known.removeprefix("collected: ")
    elif known == "no collect node in this flow":
        known = "このフローに collect ノードはありません"
    return f"「{found.group(1)}」を入れる collect ノードがありません（{known}）"


_PROBLEMS_JA: tuple[tuple[str, Rewrite], ...] = (
    # shape (ivr.validate._shape_error, pydantic)
    ("required", "入力してください（必須の項目です）"),
    ("unknown field '(.*)'", "「{0}」という項目はありません"),
    ("unknown field", "知らない項目があります"),
    (r"unknown node type '(.*)' \(one of: (.+)\)", "ノードの種類「{0}」はありません（{1} のいずれか）"),
    (r'every node needs a "type" \(one of: (.+)\)', "どのノードにも \"type\" が必要です（{0} のいずれか）"),
    ("node ids are 1–40 letters, digits, _ or -", "ノード ID は英数字・_・- の 1〜40 文字です"),
    (r"one key: 0–9, \* or #", "キーは 0〜9・*・# の1文字です"),
    ("a time HH:MM from 00:00 to 24:00", "時刻は HH:MM（00:00〜24:00）で書いてください"),
    (r"lower-case letters, digits and _, starting with a letter \(at most 30\)",
     "英小文字・数字・_ で、英小文字で始めてください（30文字まで）"),
    (r"must be a JSON object \{…\}", "JSON のオブジェクト {…} にしてください"),
    (r"at most (\d+) nodes \(this flow has (\d+)\)", "ノードは {0} 個までです（このフローは {1} 個）"),
    # pydantic's own messages for types and limits
    ("Input should be a valid string", "文字列にしてください"),
    ("Input should be a valid integer.*", "整数にしてください"),
    ("Input should be a valid number.*", "数値にしてください"),
    ("Input should be a finite number", "数値にしてください"),
    ("Input should be a valid boolean.*", "true か false にしてください"),
    ("Input should be a valid list", "リスト […] にしてください"),
    ("Input should be a valid dictionary.*", "JSON のオブジェクト {…} にしてください"),
    ("Input should be a valid date.*", "日付（YYYY-MM-DD）にしてください"),
    (r"Input should be greater than or equal to (\S+)", "{0} 以上にしてください"),
    (r"Input should be greater than (\S+)", "{0} より大きくしてください"),
    (r"Input should be less than or equal to (\S+)", "{0} 以下にしてください"),
    (r"Input should be less than (\S+)", "{0} より小さくしてください"),
    ("Input should be ('.+)", lambda m: m.group(1).replace(" or ", ", ") + " のいずれかにしてください"),
    (r"String should have at least (\d+) characters?", "{0} 文字以上にしてください"),
    (r"String should have at most (\d+) characters?", "{0} 文字以内にしてください"),
    (r"(?:List|Dictionary) should have at least (\d+) items? after validation, not (\d+)",
     "{0} 個以上必要です（今は {1} 個）"),
    (r"(?:List|Dictionary) should have at most (\d+) items? after validation, not (\d+)",
     "{0} 個までです（今は {1} 個）"),
    # each node (ivr.validate._node_errors and the checks it calls)
    (r"no queue named '(.+)' in this tenant \((.+)\)", _queues_ja),
    (r"min_digits \((\d+)\) is more than max_digits \((\d+)\)",
     "min_digits（{0}）が max_digits（{1}）より大きくなっています"),
    ("a set node must set a queue, a priority or a skill",
     "set ノードでは、キュー・優先度・スキルのどれかを設定してください"),
    ("set a queue or a skill, not both: a skill chooses its queue",
     "キューとスキルはどちらか一方にしてください（スキルがキューを決めます）"),
    (r"no queue takes the skill '(.+)' \((.+)\)", _skills_ja),
    (r"opens at (\S+) but closes at (\S+): the close must be later \(24:00 for midnight\)",
     "開始 {0}・終了 {1} になっています。終了は開始より後にしてください（深夜0時は 24:00）"),
    (r"(\S+) is in closed_dates too", "{0} は closed_dates（休業日）にも入っています"),
    (r"(\S+) is a (mon|tue|wed|thu|fri|sat|sun), which has no hours in weekly: the center would stay closed",
     lambda m: f"{m.group(1)} は{_DAYS_JA[m.group(2)]}で、weekly にその曜日の時間がないため休みのままです"),
    (r"give exactly one test: known, rank_in, open_complaint or var \+ equals(?: \(found: (.+)\))?", _one_test_ja),
    ("list at least one rank", "ランクを1つ以上書いてください"),
    ("a rank is 1–20 characters", "ランクは 1〜20 文字です"),
    ("var and equals go together: the collected variable and its value",
     "var と equals は組で書いてください（collect の変数とその値）"),
    (r"no collect node stores '(.+)' \((.+)\)", _collected_ja),
    (r"'(.+)' is collected as sensitive: kept masked, it cannot be tested",
     "「{0}」は sensitive の collect で入力され、伏せて保存されるため、分岐の条件にできません"),
    (r"'(.*)' can never match: collected values are digits", "「{0}」には一致しません（入力される値は数字です）"),
    # links and the graph
    (r"no node '(.*)' \(start must name one of the nodes\)",
     "「{0}」というノードはありません（start にはノードの ID を書きます）"),
    ("no node '(.*)'", "「{0}」というノードはありません"),
    ("not reachable from start", "start からたどり着けません"),
    (r"loops without waiting for a key press: (.+?) \(a caller who presses nothing would never leave; .*\)",
     "キー入力を待たずに回り続ける輪があります: {0}"
     "（何も押さないお客様が抜け出せません。失敗時・辞退時の行き先を出口にしてください）"),
    (r"no way from here to an exit \(.*\)",
     "ここから出口（キュー・転送・留守番電話・終話・コールバック案内）に行けません"),
    (r"no queue chosen before node (\S+) \(e\.g\. (.+?)\): name a queue here.*",
     "ノード {0} の前でキューが決まらない道があります（例: {1}）。"
     "ここか、途中の set ノードでキュー（またはスキル）を指定してください"),
    # the flow service and the page
    ("1–60 letters, digits, _ or -, starting with a letter or digit",
     "英数字・_・- の 1〜60 文字で、英数字で始めてください"),
    ("already taken", "この名前はすでに使われています"),
    ("a flow named '(.+)' already exists", "「{0}」というフローはすでにあります"),
    (r"version (\d+) was saved after version (\d+), which this edit started from: look at it first",
     "編集を始めたバージョン {1} のあとに、バージョン {0} が保存されました。まずその内容を確認してください"),
    (r"not valid JSON: (.+) \(line (\d+), column (\d+)\)", "JSON として読めません: {0}（{1} 行 {2} 文字目）"),
    ("nested too deep", "入れ子が深すぎます"),
    (r'the flow must be a JSON object: \{"start": …, "nodes": \{…\}\}',
     'フローは JSON のオブジェクト {"start": …, "nodes": {…}} にしてください'),
)  # fmt: skip
_SLOT = re.compile(r"\{(\d)\}")
_PROBLEMS = tuple((re.compile(pattern), rewrite) for pattern, rewrite in _PROBLEMS_JA)


def _fill(template: str, found: re.Match[str]) -> str:
    """``{0}``, ``{1}``… of ``template`` replaced by the match's groups (not ``str.format``: ``{…}`` is text)."""
    parts = [g or "" for g in found.groups()]
    return _SLOT.sub(lambda slot: parts[int(slot.group(1))], template)


def problem_text(lang: str, message: str) -> str:
    """An IVR flow problem (English from ``ivr.validate``, the flow service or the page) in ``lang``."""
    if lang != "ja":
        return message
    if message.startswith("not a valid key: "):
        return "キーが正しくありません: " + problem_text(lang, message.removeprefix("not a valid key: "))
    for pattern, rewrite in _PROBLEMS:
        found = pattern.fullmatch(message)
        if found is not None:
            return rewrite(found) if callable(rewrite) else _fill(rewrite, found)
    return message
