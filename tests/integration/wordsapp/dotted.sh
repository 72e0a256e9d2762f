# The Procfile's "dotted: . ./dotted.sh": a long-running type whose command
# starts with the builtin "." (which "exec . ./dotted.sh" would break).
echo "$DYNO sourced dotted.sh"
exec sleep 600
