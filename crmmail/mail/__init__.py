"""What both capture paths (smart addresses and mailbox sync) share, below both of them.

Parsing with its limits (``message``, ``limits``), the one spelling of addresses
(``addresses``), subjects and names (``subjects``, ``names``), the message key (``keys``), who
the participants are (``participants``), placing an email on cards (``cards``) and the DNS
resolver factory (``resolver``). It imports routing and storage, never the processor, the
connector, the intake or the services (``tests/test_import_graph.py``).
"""
