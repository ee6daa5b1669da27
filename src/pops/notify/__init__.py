"""Messages to patients: email now, SMS later, each behind one small function.

    from pops.notify.email import send_email
    send_email("pat@example.com", "Your receipt", text, html=html)

Senders only deliver: callers decide whether a message is due and what it says, and keep card
data, tokens and secrets out of it.
"""
