# Empty on purpose: the notes are schema-free documents (ctx.db in notes/functions.py). The
# tutorial's last part moves them into a model with `manage.py reactive_schema notes --model`.
