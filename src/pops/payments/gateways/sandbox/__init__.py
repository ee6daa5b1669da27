"""The Sandbox gateway: the embedded stand-in for an outside card gateway.

It plays NMI's part for demos and tests: its own URL prefix (/sandbox-gateway/) with hosted card
fields and wallet sheets, its own tables (tokens, transactions, refunds, vault cards; never a card
number or CVV), and an adapter (`adapter.SandboxGateway`, registered as "sandbox") that POPS
calls in-process through the gateway contract of `pops.payments.gateways.base`.

The browser side speaks postMessage to its parent window (always POPS's own origin):
  hosted fields -> parent: {"type": "sandbox-gateway:ready"}
                           {"type": "sandbox-gateway:token", "token": "tok_..."}
                           {"type": "sandbox-gateway:error", "errors": [{"path", "message"}]}
  parent -> hosted fields: {"type": "sandbox-gateway:tokenize"}
  wallet sheet -> parent (or opener): {"type": "sandbox-gateway:wallet", "wallet", "payload"}
                                      {"type": "sandbox-gateway:wallet-cancelled", "wallet"}
"""
