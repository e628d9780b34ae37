"""TCPED steps inside the node: collect, process, exploit, correlate."""
