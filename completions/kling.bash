_kling_completion() {
    local IFS=$'
'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" \
                   COMP_CWORD=$COMP_CWORD \
                   _KLING_COMPLETE=complete_bash $1 ) )
    return 0
}

complete -o default -F _kling_completion kling

# kling's fast path: a TAB on a task id of wait, status, download runs `kling __complete-ids
# CURRENT GIVEN...` (the journal alone, without loading the app); any other TAB, typer's above.
_kling_completion_ids() {
    local i cmd= cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    for (( i = 1; i < COMP_CWORD; i++ )); do
        [[ ${COMP_WORDS[i]} == -* ]] || { cmd=${COMP_WORDS[i]}; break; }
    done
    case $cmd in
        wait|status|download) ;;
        *) _kling_completion "$@"; return ;;
    esac
    if [[ $cur == -* || $prev == -* || $prev == *[=:\<\>\|\&\;]* ]]; then
        _kling_completion "$@"; return
    fi
    local -a found
    mapfile -t found < <("$1" __complete-ids "$cur" \
                         "${COMP_WORDS[@]:i+1:COMP_CWORD-i-1}" 2>/dev/null)
    COMPREPLY=( "${found[@]%%$'\t'*}" )
    return 0
}

complete -o default -F _kling_completion_ids kling
