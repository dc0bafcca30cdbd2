"""Stages that write a case folder: the thin layer between the science modules and the CLI."""
