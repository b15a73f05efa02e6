"""A stand-in for the Anthropic Files and Messages APIs, for tests and benchmarks.

It follows the wire contract in `../shared/anthropic-contract.md` so that the real `anthropic`
SDK can talk to it over HTTP on loopback: `server.StandIn` is the ASGI app and `server.serve`
runs it in a thread. Its answers are made up (extractive, with real citations), so it is never
used by kb itself and is not installed with the product packages. `loopback` runs ASGI apps and
server processes on loopback; `pdfs` writes small real PDFs and images.
"""
