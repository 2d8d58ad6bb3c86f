"""Staffing (要員計算): agents needed for a call volume by Erlang C and Erlang A, per interval of a forecast."""
