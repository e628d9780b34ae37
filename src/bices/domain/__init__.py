"""Pure data of the coalition: members, labels, users, reports. No I/O here."""
