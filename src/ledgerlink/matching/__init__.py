"""From bank row to bookkeeping: open items, references, invoice matching, suggestions, rules."""
