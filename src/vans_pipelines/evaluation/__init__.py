"""Evaluation of every system a run produced (VLM-only, cascades, Joint-GRPO stages) on the test split:
the paper's caption and video metrics, the world oracle's event accuracy, and the report around them."""
