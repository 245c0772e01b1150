"""The campaign's rules and calendar: the plan of steps, who is due what at time T, Norwegian working days, the roster file."""
