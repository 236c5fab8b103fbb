"""The contract the SDK and the emulator share: constants, country codes, validation, signing.

The emulator imports only this package from the SDK, so the client and the server can never
disagree on a field name, a rule or a message. Nothing here imports the rest of the SDK.
"""
