"""Screen pop (画面ポップアップ): everything about a caller, from any written form of the number."""
