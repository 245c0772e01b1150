"""The web page for HR and coordinators (Starlette + uvicorn), what each role sees, and its users file."""
