"""Tests of the Streamlit UI: its views, the app under AppTest, and a real browser."""
