"""The node server (REST API, OCSP/CRL/TSA/EST endpoints, web UI): not built yet."""
