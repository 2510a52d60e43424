<#
  Certflow command issuer for Active Directory Certificate Services (AD CS), run by a Certflow worker on a
  domain-joined Windows host (e.g. an Azure Arc / hybrid worker) with certreq.exe. Contract: docs/command-issuer.md.

  Worker configuration (example):
    command: C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe
    args:    -NoProfile -NonInteractive -ExecutionPolicy Bypass -File C:\certflow\adcs-certreq.ps1
    env:     ADCS_CONFIG   = ca01.corp.example\Corp Issuing CA
             ADCS_TEMPLATE = WebServer

  submit: certreq -submit. Issued -> exit 0, chain PEM on stdout. A template that needs CA manager approval
          leaves the request "Taken Under Submission" -> exit 75 with "ref <RequestId>": Certflow waits, then polls.
  poll:   (CERTFLOW_ACTION=poll, CERTFLOW_REQUEST_REF=<RequestId>) certreq -retrieve, same mapping.
  CA unreachable (RPC errors) -> exit 69, retried later. Denied or any other error -> exit 1 with certreq's text.
#>
$ErrorActionPreference = 'Stop'

if (-not $env:ADCS_CONFIG) { [Console]::Error.WriteLine('set ADCS_CONFIG (host\CA name) in the issuer env'); exit 1 }
$template = if ($env:ADCS_TEMPLATE) { $env:ADCS_TEMPLATE } else { 'WebServer' }

$work = Join-Path ([IO.Path]::GetTempPath()) ("certflow-" + [guid]::NewGuid())
New-Item -ItemType Directory -Path $work | Out-Null
$csrFile = Join-Path $work 'request.csr'
$certFile = Join-Path $work 'leaf.cer'
$chainFile = Join-Path $work 'chain.p7b'

function Write-PemChain {
  # leaf first, then the intermediates from the PKCS#7 (the self-signed root is left out)
  $leaf = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2($certFile)
  $all = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2Collection
  if (Test-Path $chainFile) { $all.Import($chainFile) }
  $chain = @($leaf) + @($all | Where-Object { $_.Thumbprint -ne $leaf.Thumbprint -and $_.Subject -ne $_.Issuer })
  foreach ($c in $chain) {
    $b64 = [Convert]::ToBase64String($c.RawData, 'InsertLineBreaks')
    [Console]::Out.Write("-----BEGIN CERTIFICATE-----`n$b64`n-----END CERTIFICATE-----`n")
  }
}

try {
  if ($env:CERTFLOW_ACTION -eq 'poll') {
    if ($env:CERTFLOW_REQUEST_REF -notmatch '^\d+$') { [Console]::Error.WriteLine("not an AD CS request id: $env:CERTFLOW_REQUEST_REF"); exit 1 }
    $output = & certreq.exe -retrieve -q -config $env:ADCS_CONFIG $env:CERTFLOW_REQUEST_REF $certFile $chainFile 2>&1 | Out-String
  } else {
    [IO.File]::WriteAllText($csrFile, [Console]::In.ReadToEnd())
    $output = & certreq.exe -submit -q -config $env:ADCS_CONFIG -attrib "CertificateTemplate:$template" $csrFile $certFile $chainFile 2>&1 | Out-String
  }
  $code = $LASTEXITCODE

  if (Test-Path $certFile) { Write-PemChain; exit 0 }
  if ($output -match 'RPC server is unavailable|0x800706ba|0x800706be|could not be contacted') {
    [Console]::Error.WriteLine($output); exit 69
  }
  if ($output -match 'pending|Taken Under Submission') {
    $id = if ($output -match 'RequestId:\s*"?(\d+)') { $Matches[1] } else { $env:CERTFLOW_REQUEST_REF }
    [Console]::Out.WriteLine("ref $id")
    [Console]::Out.WriteLine('retry-after 900')   # ask again in 15 minutes
    exit 75
  }
  [Console]::Error.WriteLine("certreq exited $code without a certificate: $output")
  exit 1
} finally {
  Remove-Item -Recurse -Force $work -ErrorAction SilentlyContinue
}
