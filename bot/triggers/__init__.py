"""Which deliveries become tickets, and who may ask."""
