"""The web console of the gateway's admin port (issue 11): a static page and the JSON it
polls. `app` serves and guards it, `api` shapes the documents, `errors_feed` keeps the
recent errors; `static/` holds the page (plain HTML, CSS and JS modules, no build step)."""
