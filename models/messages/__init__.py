"""Messages: the email outbox (queue side, `outbox`), its delivery by SMTP (`delivery`), the templates'
rendering (`rendering`) and the notices self-service sends (`notify`).

The queue side sits low (booking and payments queue messages after their own writes); it reads other
contexts' documents only. Import the submodules by name; this package's top imports nothing.
"""
