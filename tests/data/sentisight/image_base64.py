import base64
import json
import requests

token = "your_token"
project_id = "your_project_id"
image_filename = "your_image_path"

headers = {"X-Auth-token": token, "Content-Type": "application/json"}
with open(image_filename, "rb") as image_file:
    encoded_string = base64.b64encode(image_file.read()).decode("ascii")
payload = json.dumps({"base64": encoded_string})
r = requests.post('BASE/api/similarity-labels?project=' + project_id + '&threshold=10&save=false&use-first=false',
                  headers=headers, data=payload)

if r.status_code == 200:
    print(r.text)
else:
    print('Error occured with REST API.')
    print('Status code: {}'.format(r.status_code))
    print('Error message: ' + r.text)
