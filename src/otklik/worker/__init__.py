"""Background work: the resolver loop that turns the event log into profiles, and the queue."""
