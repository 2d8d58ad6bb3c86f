"""Japanese-first UI strings with English available.

The Japanese text is the key: templates call ``t("顧客マスター")`` and get it back in Japanese or its
English entry. The page's script gets its strings from :func:`js_strings`, rendered into the page as
JSON, so the JS never holds text of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Request

from kakehashi.ivr import problems as ivr_problems
from kakehashi.web import strings
from kakehashi.web.strings import ivr as ivr_strings

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
        # Also on the desk, whose strings (web/strings/desk.py: "Agent", "Answer") are merged over this table and win.
        "エージェント": "Agents",
        "応答": "Answered",
        "state.logged_out": "Logged out",
        "state.available": "Available",
        "state.ringing": "Ringing",
        "state.on_call": "On a call",
        "state.wrap_up": "Wrap-up",
        "state.break": "Break",
        "state.missed": "Missed",
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


# --- IVR flow problems ------------------------------------------------------------------------------------
# ``ivr.validate``, the flow service and the /ivr page report each problem with a code and its parameters
# (``ivr.problems``); the page renders its language from the code: Japanese from ``strings/ivr.py``, English from
# the domain's own catalogue (the same words as the API's ``message``).


def problem_text(lang: str, error: Mapping[str, Any]) -> str:
    """An IVR flow problem (``{"message", "code", "params"}``) in ``lang``. A problem without a known code (a
    CSRF refusal the page wrote in the page's language already) is shown as its message."""
    code = error.get("code")
    params: dict[str, Any] = dict(error.get("params") or {})
    if not isinstance(code, str) or code not in ivr_problems.ENGLISH:
        return str(error.get("message", ""))
    if lang != "ja":
        return ivr_problems.english(code, params)
    template = ivr_strings.PROBLEMS_JA[code]
    try:
        text = template(params) if callable(template) else template.format(**params)
    except (KeyError, IndexError):  # a parameter missing (e.g. pydantic's context changed): the English is right
        return str(error.get("message", ""))
    return ivr_strings.KEY_PREFIX_JA + text if params.get("in_key") else text
