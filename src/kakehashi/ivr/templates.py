"""Example flows to start from (``kakehashi demo`` may seed them; the user guide shows them).

The queue names are placeholders: a tenant saving one needs queues of those names (``orders``, ``support``,
``complaints``, ``vip``) or must change them — the validator names every unknown queue.
"""

from __future__ import annotations

import copy
from typing import Any

#: A TV-shopping order desk (テレビショッピング受注センター): the recording notice (APPI: the purpose is
#: announced before recording starts) → business hours → VIP customers straight to their team → a menu
#: (1 order, 2 order inquiry with the order number, 3 complaint, a caller with an open complaint first in
#: line) → queues; after hours a callback offer, else voicemail.
ORDER_DESK_EXAMPLE: dict[str, Any] = {
    "start": "welcome",
    "nodes": {
        "welcome": {
            "type": "notice",
            "prompt": (
                "お電話ありがとうございます。テレビショッピング受注センターです。"
                "ご注文とお問い合わせの内容確認、および応対品質向上のため、この通話を録音させていただきます。"
            ),
            "record": True,
            "next": "hours",
        },
        "hours": {
            "type": "hours",
            "schedule": {
                "weekly": {
                    "mon": [["09:00", "21:00"]],
                    "tue": [["09:00", "21:00"]],
                    "wed": [["09:00", "21:00"]],
                    "thu": [["09:00", "21:00"]],
                    "fri": [["09:00", "21:00"]],
                    "sat": [["09:00", "18:00"]],
                    "sun": [["09:00", "18:00"]],
                },
                "closed_on_holidays": True,
                "closed_dates": ["2026-12-31", "2027-01-01", "2027-01-02", "2027-01-03"],
                "open_dates": [],
            },
            "open": "vip_check",
            "closed": "closed_message",
        },
        "vip_check": {"type": "branch", "when": {"rank_in": ["vip"]}, "then": "vip_route", "else": "main_menu"},
        "vip_route": {"type": "set", "queue": "vip", "priority": 50, "next": "to_vip"},
        "to_vip": {"type": "queue"},
        "main_menu": {
            "type": "menu",
            "prompt": (
                "ご注文は1を、ご注文内容のお問い合わせは2を、商品の不具合やご意見は3を押してください。"
                "もう一度お聞きになる場合は9を押してください。"
            ),
            "options": {"1": "to_orders", "2": "order_number", "3": "complaint_check", "9": "main_menu"},
            "timeout_s": 6,
            "retries": 2,
            "invalid_prompt": "入力が確認できませんでした。",
            "on_fail": "to_orders",
        },
        "to_orders": {"type": "queue", "queue": "orders"},
        "order_number": {
            "type": "collect",
            "prompt": "お手元のご注文番号8桁を入力し、最後にシャープを押してください。",
            "var": "order_no",
            "min_digits": 8,
            "max_digits": 8,
            "timeout_s": 10,
            "retries": 1,
            "next": "to_support",
            "on_fail": "to_support",
        },
        "to_support": {"type": "queue", "queue": "support"},
        "complaint_check": {
            "type": "branch",
            "when": {"open_complaint": True},
            "then": "complaint_first",
            "else": "complaint_route",
        },
        "complaint_first": {"type": "set", "queue": "complaints", "priority": 30, "next": "to_complaints"},
        "complaint_route": {"type": "set", "queue": "complaints", "next": "to_complaints"},
        "to_complaints": {"type": "queue"},
        "closed_message": {
            "type": "play",
            "prompt": (
                "本日の受付は終了いたしました。受付時間は、平日は午前9時から午後9時、"
                "土曜・日曜は午前9時から午後6時です。祝日と年末年始はお休みをいただいております。"
            ),
            "next": "callback",
        },
        "callback": {
            "type": "callback_offer",
            "prompt": "翌営業日に担当者から折り返しのお電話をご希望の方は1を押してください。",
            "accept": "1",
            "queue": "orders",
            "decline": "voicemail",
        },
        "voicemail": {
            "type": "voicemail",
            "prompt": "発信音のあとに、お名前とお電話番号、ご用件をお話しください。",
            "queue": "support",
        },
    },
}

#: The queues :data:`ORDER_DESK_EXAMPLE` names.
ORDER_DESK_QUEUES = frozenset({"orders", "support", "complaints", "vip"})

#: The smallest valid flow: say goodbye and hang up (needs no queue).
MINIMAL_EXAMPLE: dict[str, Any] = {
    "start": "bye",
    "nodes": {"bye": {"type": "hangup", "prompt": "ただいま電話に出ることができません。"}},
}


def order_desk_example() -> dict[str, Any]:
    """A fresh copy of :data:`ORDER_DESK_EXAMPLE`, safe to change."""
    return copy.deepcopy(ORDER_DESK_EXAMPLE)
