"""Autograder for the course's DAG exercises: `python -m autograder grade EXERCISE`."""
