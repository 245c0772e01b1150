"""The form: its definition, the personalised .xlsx built from it, a filled copy opened, read and validated, answers as people read them."""
