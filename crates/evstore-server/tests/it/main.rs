//! HTTP tests of `evstore serve`: a real client (reqwest) against servers on ephemeral
//! loopback ports, and a real headless Chromium for the web page.
