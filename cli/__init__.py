"""artgw's command line: `artgw serve`, `artgw gc`."""
