"""Running a plan: the clock, ready-step tracking, step execution and the scheduler.
"""
