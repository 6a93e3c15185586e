"""The UI's pages, one module each; each has `show(info, peers)`.

Not named `pages/`: Streamlit would list a `pages/` folder beside app.py as pages of its own.
"""
