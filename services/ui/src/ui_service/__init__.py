"""The Streamlit UI: it reaches the pipeline only through the model service and the gateway."""
