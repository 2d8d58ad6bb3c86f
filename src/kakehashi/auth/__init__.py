"""Users, login, sessions, API tokens and the route guard."""
