# kling's fast path: a TAB on a task id of wait, status, download runs `kling __complete-ids
# CURRENT GIVEN...` (the journal alone, without loading the app); any other TAB, typer's line
# below (its condition first asks __kling_task_id_here).
function __kling_task_id_here --description 'Whether a TAB on this kling line is on a task id'
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -l i 2
    while test $i -le (count $words); and string match -q -- '-*' $words[$i]
        set i (math $i + 1)
    end
    test $i -le (count $words); and contains -- $words[$i] wait status download; or return 1
    string match -q -- '-*' "$current" $words[-1]; and return 1
    set -g __kling_current "$current"
    set -g __kling_given $words[(math $i + 1)..-1]
end
function __kling_task_ids_found --description 'The task ids kling offers here, if any'
    set -g __kling_task_ids (kling __complete-ids "$__kling_current" $__kling_given 2>/dev/null)
    test (count $__kling_task_ids) -gt 0
end
complete --command kling --no-files --keep-order \
    --condition '__kling_task_id_here; and __kling_task_ids_found' \
    --arguments '(printf "%s\n" $__kling_task_ids)'
complete --command kling --no-files --arguments "(env _KLING_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=get-args _TYPER_COMPLETE_ARGS=(commandline -cp) kling)" --condition "not __kling_task_id_here; and env _KLING_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=is-args _TYPER_COMPLETE_ARGS=(commandline -cp) kling"
