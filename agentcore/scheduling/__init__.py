"""Running a plan: ready-step tracking, step execution, the scheduler and how steps and schedules end."""
