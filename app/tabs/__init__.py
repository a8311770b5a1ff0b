"""One module per tab, each with `create_tab(studio, model, style, examples)`."""
