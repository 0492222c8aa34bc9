"""The LLM roles: controller (next action), processor (state patches), planner (plans).

Each role builds its request and parses the answer; prompts are package data in ``prompts/``.
"""
