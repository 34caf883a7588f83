"""How long any statement of ours waits for a lock (the SQL steps, the ownership move, the plan script).

Never queue behind an open migration: a waiting ALTER blocks every query behind it. Past this the
statement gives up with "canceling statement due to lock timeout", and the step says what to do.
"""

LOCK_TIMEOUT = "5s"
