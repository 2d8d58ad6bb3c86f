"""Purchase history (購買履歴): orders and their lines."""
