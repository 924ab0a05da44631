"""Toolkit for the Airflow 3 course: the embedded lab, its REST client and display helpers."""
