"""Rules: pure functions of values (snapshot + time + request -> change or decision) and the
permission checks. They never read a port, a clock or a store."""
