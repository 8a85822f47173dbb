Import-Module PSReadLine
Set-PSReadLineKeyHandler -Chord Tab -Function MenuComplete
$scriptblock = {
    param($wordToComplete, $commandAst, $cursorPosition)
    $Env:_KLING_COMPLETE = "complete_powershell"
    $Env:_TYPER_COMPLETE_ARGS = $commandAst.ToString()
    $Env:_TYPER_COMPLETE_WORD_TO_COMPLETE = $wordToComplete
    kling | ForEach-Object {
        $commandArray = $_ -Split ":::"
        $command = $commandArray[0]
        $helpString = $commandArray[1]
        [System.Management.Automation.CompletionResult]::new(
            $command, $command, 'ParameterValue', $helpString)
    }
    $Env:_KLING_COMPLETE = ""
    $Env:_TYPER_COMPLETE_ARGS = ""
    $Env:_TYPER_COMPLETE_WORD_TO_COMPLETE = ""
}
Register-ArgumentCompleter -Native -CommandName kling -ScriptBlock $scriptblock

# kling's fast path: a TAB on a task id of wait, status, download runs `kling __complete-ids
# CURRENT GIVEN...` (the journal alone, without loading the app), where PowerShell passes an
# empty argument as one (7.3 on: $PSNativeCommandArgumentPassing); any other TAB, typer's above.
$kling_typer_completer = $scriptblock
$scriptblock = {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements |
        Where-Object { $_.Extent.StartOffset -lt $cursorPosition } |
        ForEach-Object { $_.Extent.Text })
    if ($wordToComplete) { $words = @($words | Select-Object -SkipLast 1) }
    $cmd = 0
    for ($i = 1; $i -lt $words.Count; $i++) {
        if (-not $words[$i].StartsWith('-')) { $cmd = $i; break }
    }
    $passing = Get-Variable PSNativeCommandArgumentPassing -ValueOnly -ErrorAction Ignore
    if ($cmd -eq 0 -or @('wait','status','download') -cnotcontains $words[$cmd] -or
        "$wordToComplete".StartsWith('-') -or $words[-1].StartsWith('-') -or
        -not $passing -or $passing -eq 'Legacy') {
        return & $kling_typer_completer $wordToComplete $commandAst $cursorPosition
    }
    $given = @($words | Select-Object -Skip ($cmd + 1))
    kling __complete-ids $wordToComplete @given 2>$null | ForEach-Object {
        $id, $status = $_ -split "`t", 2
        $tip = if ($status) { $status } else { $id }
        [System.Management.Automation.CompletionResult]::new($id, $id, 'ParameterValue', $tip)
    }
}.GetNewClosure()
Register-ArgumentCompleter -Native -CommandName kling -ScriptBlock $scriptblock
