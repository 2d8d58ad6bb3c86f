"""Japanese-first UI strings with English available."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

LANGUAGES = ("ja", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "顧客マスター": "Customer master",
        "電話番号で検索": "Look up by phone",
        "電話番号": "Phone",
        "検索": "Search",
        "顧客名で検索": "Search by name",
        "氏名": "Name",
        "フリガナ": "Reading (kana)",
        "郵便番号": "Postal code",
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
        "登録": "Save",
        "購入履歴": "Purchase history",
        "未解決のクレーム・返品": "Open complaints and returns",
        "対応履歴": "Contact history",
        "追加項目": "Custom fields",
        "未登録の番号です": "Unknown caller",
        "男性": "Male",
        "女性": "Female",
        "その他": "Other",
        "未回答": "Not given",
        "歳": "",
        "件": "",
        "なし": "None",
        "登録しました": "Saved",
        "入力内容を確認してください": "Please check the fields below",
        "言語": "Language",
        "合計": "Total",
        "注文日": "Date",
        "商品": "Items",
        "番号を入力してください": "Enter a number",
    },
}


def pick_language(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "ja"
    return lang if lang in LANGUAGES else "ja"


def translator(lang: str) -> Callable[[str], str]:
    table = MESSAGES.get(lang, {})

    def t(text: str) -> str:
        return table.get(text, text) or text

    return t
