# SPDX-License-Identifier: MIT
# bash completion for drover. Nothing here lists verbs, flags, apps or types:
# the verbs and each verb's synopsis and flags come from the CLI itself
# (`drover help`, `drover VERB --help`), apps, types and nodes from the
# cluster at completion time (`drover apps --json`, `ps APP --json`,
# `nodes --json`), so a new verb or app completes without an edit here.

# _drover_field FIELD VERB ARGS...: the values of "FIELD":"..." in the
# verb's JSON output (nothing when the controller cannot be reached).
_drover_field() {
    local field=$1
    shift
    DROVER_TIMEOUT_MS=${DROVER_TIMEOUT_MS:-2000} "$_drover_bin" "$@" --json 2>/dev/null |
        grep -oE "\"$field\": ?\"[^\"]*\"" | cut -d'"' -f4 | sort -u
}

_drover() {
    local cur=${COMP_WORDS[COMP_CWORD]} verb=${COMP_WORDS[1]:-} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local _drover_bin=${COMP_WORDS[0]} synopsis words=() i n kind app
    if [ "$COMP_CWORD" -eq 1 ]; then
        words=($("$_drover_bin" help 2>/dev/null |
            awk '/^Verbs:/ { v = 1; next } /^$/ { v = 0 } v && /^  [a-z]/ { print $1 }') --version)
        COMPREPLY=($(compgen -W "${words[*]}" -- "$cur"))
        return
    fi
    if [ "$verb" = help ]; then
        COMPREPLY=($(compgen -W "$("$_drover_bin" help 2>/dev/null |
            awk '/^Verbs:/ { v = 1; next } /^$/ { v = 0 } v && /^  [a-z]/ { print $1 }')" -- "$cur"))
        return
    fi
    synopsis=$("$_drover_bin" "$verb" --help 2>/dev/null | sed -n '1s/^Usage: drover [^ ]* *//p')
    app=${COMP_WORDS[2]:-}
    case $prev in
    --type) kind=TYPE ;;
    --node) kind=NODE ;;
    --timeout | -n | --num | -m | --message | -s | --source) return ;;
    esac
    if [ -z "${kind:-}" ] && [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$("$_drover_bin" "$verb" --help 2>/dev/null |
            grep -oE -- '(^|[ [])--?[a-z][a-z-]*' | tr -d ' [' | sort -u)" -- "$cur"))
        return
    fi
    if [ -z "${kind:-}" ]; then
        # The synopsis word at this position, flags and their values skipped.
        n=0
        for ((i = 2; i < COMP_CWORD; i++)); do
            case ${COMP_WORDS[i]} in
            --type | --node | --timeout | -n | --num | -m | --message | -s | --source) ((i++)) ;;
            -*) ;;
            *) ((n++)) ;;
            esac
        done
        words=($(tr -d '[]|' <<<"$synopsis" | tr ' ' '\n' | grep -v '^-' | grep -v '^$'))
        kind=${words[n]:-${words[${#words[@]} - 1]:-}}
        [ "$n" -ge "${#words[@]}" ] && [[ $kind != *... ]] && return
    fi
    case $kind in
    APP) COMPREPLY=($(compgen -W "$(_drover_field name apps)" -- "$cur")) ;;
    NODE) COMPREPLY=($(compgen -W "$(_drover_field name nodes)" -- "$cur")) ;;
    TYPE) COMPREPLY=($(compgen -W "$(_drover_field type ps "$app" | grep -vx run)" -- "$cur")) ;;
    TYPE=N*)
        compopt -o nospace 2>/dev/null
        COMPREPLY=($(compgen -W "$(_drover_field type ps "$app" | grep -vx run | sed 's/$/=/')" -- "$cur"))
        ;;
    DIR) COMPREPLY=($(compgen -d -- "$cur")) ;;
    esac
}
complete -F _drover drover
