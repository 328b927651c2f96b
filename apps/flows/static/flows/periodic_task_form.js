// django-celery-beat's periodic task page (templates/admin/djcelery/change_periodictask_form.html):
// the chosen crontab said in words under the field, as the package's inline script did.
(function () {
  var $ = django.jQuery;
  var readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
  var help = document.getElementById("periodic-task-help").dataset.crontabHelp;
  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () {
    var cell = $(".field-crontab .help").empty();
    cell.append(document.createTextNode(help), document.createElement("br"),
      document.createTextNode("Translation: " + readable[$("#id_crontab").val()]));
  });
})();
