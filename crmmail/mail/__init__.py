"""What both capture paths (smart addresses and mailbox sync) share: addresses and subjects."""
