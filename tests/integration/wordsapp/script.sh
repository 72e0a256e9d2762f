# Sourced by a one-off (`drover run APP -- '. ./script.sh'`): sets a variable
# in the shell that sources it, which only works when no "exec" is put first.
SOURCED=yes
echo "sourced in $(pwd)"
