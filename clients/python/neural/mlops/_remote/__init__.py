"""Remote adapters: each has the public methods of one domain service, over gRPC.

An API object calls its domain service the same way embedded or remote; remotely, the
adapter turns each call into the RPC the domain's servicer serves, with the domain's
``convert`` module on both sides of the wire.
"""
