"""Running a plan: ready-step tracking, step execution and the scheduler.
"""
